"""How the console writes dates and times (English): a 24-hour clock, and every
date-time with its zone (TIME_ZONE, env DJANGO_TIME_ZONE), so "09:14" is never
read in the wrong zone. The API is not affected: it writes ISO 8601 with offset."""

DATETIME_FORMAT = "j M Y, H:i T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
TIME_FORMAT = "H:i"
DATE_FORMAT = "j M Y"
SHORT_DATE_FORMAT = "Y-m-d"
