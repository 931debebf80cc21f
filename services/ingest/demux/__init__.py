"""The demultiplexing worker of ingest: RunUploaded -> FASTQ in the file store -> SamplesDemultiplexed.

`worker.SUBSCRIPTION` is the bus subscription (queue `ingest.demultiplexer`) the ingest app registers.
"""
