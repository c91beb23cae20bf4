J

wf/s/0#1@1expired