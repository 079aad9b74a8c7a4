from visgate_worker.main import main

main()
