from pinpoint_export_sandbox.cli import main

main()
