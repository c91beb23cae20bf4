"
lawinning