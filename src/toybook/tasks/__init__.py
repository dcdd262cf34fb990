"""The tasks, one folder each: ``toybook/tasks/<name>/`` holds everything the project knows
about that task (its format, presets, measurement, claims, readings, analyses and exercise
checkers). :mod:`toybook.registry` finds the folders; nothing else imports this package.
"""
