"""seqhub repository service: the GMI REST API over INSDC metadata (Study, Sample, Experiment, Run, Analysis, Submission), JSON and SRA XML."""
