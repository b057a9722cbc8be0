"""The copier: the program the copy Job runs (`pinpoint-export-operator copy`)."""
