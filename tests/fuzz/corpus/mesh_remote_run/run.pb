´
owner/wf/s/0#1@1wf/s/0#1sh-c.cat /w/wf/in.txt /w/wf/big.txt > /w/wf/s/0.out"A=b*/w/wf2process8H
R
in.txtsmallR%
big.txt00ff00ff00ff00ff.in.1 €€ÀZ/w/wf/s/0.out