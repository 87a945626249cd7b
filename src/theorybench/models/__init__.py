"""Networks used by the experiments (MLPs and CNNs with named initializations, polynomial nets,
ResNets)."""
