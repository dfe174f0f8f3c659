"""`sharpeyes demo`: the whole product on one machine, from real parts.

A broker (Mosquitto, or the embedded amqtt broker when Mosquitto is missing), a real RTSP server
playing two clips from ../shared/media as cameras, central and one edge as child processes of
this one. Interactive mode runs until Ctrl-C; `--smoke` waits for both demo hazards to become
incidents through the REST API and exits 0, or exits 1 after a deadline saying what is missing.

Pure pieces (commands, environment, response parsing) are functions; `DemoRun` does the I/O.

- `layout.py`: the demo's files, ports and folders, and the command lines and environment of its children;
- `processes.py`: `DemoRun` starts, watches and stops the parts; `run_demo` is the CLI's entry point;
- `smoke.py`: the `--smoke` check through the REST API;
- `printing.py`: what the demo tells the person who started it.
"""
