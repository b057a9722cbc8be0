-- Argo CD health of a PinpointExport: one export run, like a batch Job.
-- Pending, Exporting, Copying: Progressing; Succeeded: Healthy; Failed: Degraded; the message
-- is the operator's status.message. A phase this script does not know (a later operator's)
-- is read from the kstatus conditions the operator writes with it: Stalled, Ready, Reconciling.
hs = {}

local health = {
  Pending = "Progressing",
  Exporting = "Progressing",
  Copying = "Progressing",
  Succeeded = "Healthy",
  Failed = "Degraded",
}

local function true_condition(kind)
  for _, condition in ipairs(obj.status.conditions or {}) do
    if condition.type == kind and condition.status == "True" then
      return condition
    end
  end
  return nil
end

if obj.status == nil or obj.status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator"
  return hs
end

hs.status = health[obj.status.phase]
if hs.status == nil then
  if true_condition("Stalled") ~= nil then
    hs.status = "Degraded"
  elseif true_condition("Ready") ~= nil then
    hs.status = "Healthy"
  else
    hs.status = "Progressing"
  end
end
hs.message = obj.status.message or obj.status.phase
return hs
