from pastools_jobs.entry import main

main()
