
	not found