"""Static files of the web console (a package so that installs carry them)."""
