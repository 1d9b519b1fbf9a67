from pastools_jobs.cli import main

main()
