module labhub.invalid/pause

go 1.22
