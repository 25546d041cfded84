"""`python -m kvtool`: the same program as the `kvtool` console script."""

from kvtool.cli.launch import main

if __name__ == "__main__":
    main()
