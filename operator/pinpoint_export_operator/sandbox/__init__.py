"""The local sandbox: a real control plane, an S3 server, the Pinpoint emulator and a node agent.

Used by the tests, the demo and the benchmarks. Nothing here runs in a real cluster.
"""
