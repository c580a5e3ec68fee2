from sciml.cli import main

main()
