from mcpmux.cli import main

main()
