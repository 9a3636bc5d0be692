from mayak.cli import main

main()
