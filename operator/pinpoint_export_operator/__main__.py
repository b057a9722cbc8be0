from pinpoint_export_operator.cli import main

main()
