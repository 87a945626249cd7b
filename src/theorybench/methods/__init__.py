"""Built-in method families and their methods: adversarial-training losses, min-max games and
min-max algorithms. Each module declares its families (with their protocols) and registers its
methods; the registry imports every module of this package."""
