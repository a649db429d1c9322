"""The {{ cookiecutter.package_name }} package: data contract, training, validation gate, tracking and report."""

__version__ = "0.1.0"
