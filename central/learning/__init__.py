"""The learning loop: reviews become labelled frames, exported as a training set."""
