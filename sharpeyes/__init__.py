"""sharpeyes: command line and demo orchestration over the edge, central, broker and models packages."""

__version__ = "0.1.0"
