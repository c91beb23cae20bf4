
owner/wf/s/0#1@1wf/s/0#1