"""seqhub ingest service: instrument runs — tus resumable uploads, run assembly, BCL/CBCL demultiplexing
into FASTQ samples."""
