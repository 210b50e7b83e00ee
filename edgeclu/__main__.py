from edgeclu.cli import main

main()
