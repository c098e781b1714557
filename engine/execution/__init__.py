"""Where and when jobs run: the queue and worker slots, the job kinds' registry, and the local and Ray executors."""
