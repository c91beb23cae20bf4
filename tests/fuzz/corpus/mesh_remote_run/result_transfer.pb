"B
owner/wf/s/0#1@1wf/s/0#1	succeededb00ff00ff00ff00ff.outh€€À