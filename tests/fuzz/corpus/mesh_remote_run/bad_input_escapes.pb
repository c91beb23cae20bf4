0
lax*/w2processR
../etc/passwdxZ/w/o