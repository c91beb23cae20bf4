z&
inst-1
inv-1
--flagA=B2
wf0