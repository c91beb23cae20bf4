R

wf/s/0#1@1	ô€€€€shrunk