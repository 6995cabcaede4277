from orglogin.cli import main

main()
