"""`sharpeyes bench edge`: N real RTSP cameras, the edge under test, the floor and the peer, in one run.

Order of a run: build the camera stream (cached), start RTSP servers serving it under N names
and one Mosquitto, then measure three contestants one after another, each in its own process and
over the same window length: the edge (fire-lane zones on every camera), the floor (bare decode
plus bare onnxruntime), and the peer (Ultralytics' streaming predictor). Each contestant gets a
warm-up (connect, load the model, first samples) that is not measured. Ratios are taken between
figures of the same run because the machine is shared and its speed varies from run to run.

- `options.py`: what a run is asked to do, and where its footage is by default;
- `cameras.py`: the stand-in cameras (encoded clips, RTSP servers), the site they form, the alert clock;
- `measure.py`: one contestant in its own process over the measured window, and its samples read back;
- `baselines.py`: the model file all three run, and the floor and peer contestants;
- `result.py`: the figures, the flat JSON summary, the issue's targets and why any figure is null;
- `run.py`: a whole run, in the order above.
"""
