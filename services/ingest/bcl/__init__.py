"""Illumina run folders: RunInfo/RunParameters, sample sheets, BCL/CBCL codecs, the instrument
simulator and the BCL/CBCL -> FASTQ demultiplexer.

Pure code: no aiohttp, no pymongo. The CLI (`seqhub demux`, `seqhub simulate run`) and the
ingest worker (`services.ingest.demux`) are thin layers over this package.
"""
