"""`rtfin lag`: consumer lag, time lag and end-to-end data age as plain-data snapshots (the cli renders)."""
