module airgap.local/pause

go 1.22
