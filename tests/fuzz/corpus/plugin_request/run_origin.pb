
z
inst-12

wfBhst