"""The embedded demo practices: real FHIR R4 servers on 127.0.0.1 holding fictional patients.

Start a set with `app.demo.network.DemoNetwork.start()`. Used by `mosaic demo`, the tests and the
benchmarks; nothing here imports app.ui.
"""
