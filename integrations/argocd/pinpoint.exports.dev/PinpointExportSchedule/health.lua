-- Argo CD health of a PinpointExportSchedule: recurring exports, like a CronJob.
-- spec.suspend: Suspended. Otherwise the operator's kstatus conditions decide:
-- Stalled=True (InvalidSchedule, InvalidTimeZone, LastRunFailed): Degraded, with its message;
-- Ready=True: Healthy, with its message; not seen by the operator yet, or an error being
-- retried (Reconciling=True): Progressing.
hs = {}

local function true_condition(kind)
  for _, condition in ipairs((obj.status or {}).conditions or {}) do
    if condition.type == kind and condition.status == "True" then
      return condition
    end
  end
  return nil
end

local stalled = true_condition("Stalled")
local ready = true_condition("Ready")
local reconciling = true_condition("Reconciling")

if obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = (stalled or ready or {}).message or "Suspended"
elseif stalled ~= nil then
  hs.status = "Degraded"
  hs.message = stalled.message
elseif reconciling ~= nil then
  hs.status = "Progressing"
  hs.message = reconciling.message
elseif ready ~= nil then
  hs.status = "Healthy"
  hs.message = ready.message
else
  hs.status = "Progressing"
  hs.message = "Waiting for the operator"
end
return hs
