"""seqhub repository service: the GMI REST API over INSDC metadata (Study, Sample, Experiment, Run,
Analysis, Submission), in JSON and SRA XML, fed by demultiplexed runs."""
