from rtfin_cli.cli.main import run

run()
