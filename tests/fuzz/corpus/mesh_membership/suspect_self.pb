z
h0Bh1