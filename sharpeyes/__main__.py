from sharpeyes.cli import app

app(prog_name="sharpeyes")
