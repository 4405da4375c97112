from govfacts.cli.main import main

main()
