from fs_bus.cli.main import main

main()
