print("csi-bench: not yet")
