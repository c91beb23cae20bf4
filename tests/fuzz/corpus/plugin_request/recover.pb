	š
inst-1inv-22