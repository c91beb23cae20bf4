’
inst-1