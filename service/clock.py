"""What day it is: Indonesia's easternmost zone, so no office is told its today is in the future."""
import datetime as dt

# WIT is UTC+9 all year (no daylight saving), so a fixed offset needs no tz database.
INDONESIA_EAST = dt.timezone(dt.timedelta(hours=9), "WIT")
PROGRAMME_START = dt.date(2011, 1, 1)


def today():
    return dt.datetime.now(INDONESIA_EAST).date()
