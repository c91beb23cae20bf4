z5
inst-1+
inv-1
--flagA=B2
wf0Bowner.example