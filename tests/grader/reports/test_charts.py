from grader.reports.charts import HEIGHT, PAD, curves, histogram

HISTORY = (("epoch", (1.0, 2.0, 3.0)), ("train_loss", (3.5, 1.0, 0.2)), ("val_loss", (2.0, 0.8, 0.3)),
           ("val_dice_fg", (0.2, 0.6, 0.9)))


def test_losses_and_scores_get_charts_of_their_own():
    losses, scores = curves(HISTORY)
    assert (losses.title, [s.name for s in losses.series]) == ("Losses", ["train_loss", "val_loss"])
    assert (scores.title, [s.name for s in scores.series]) == ("Scores", ["val_dice_fg"])
    assert losses.y_max == 3.5 and scores.y_max == 1.0  # a Dice of 0.9 drawn at 90 % of the height
    last_y = float(scores.series[0].points.split()[-1].split(",")[1])
    assert abs(last_y - (PAD + (HEIGHT - 2 * PAD) * 0.1)) < 0.1
    assert [s.last for s in losses.series] == [0.2, 0.3]


def test_a_history_without_losses_or_epochs_still_charts_against_the_row():
    (scores,) = curves((("dice", (0.5, 0.7)),))
    assert scores.title == "Scores" and scores.x_max == 2
    assert curves((("epoch", (1.0,)),)) == ()


def test_the_histogram_counts_full_marks_in_the_top_bin():
    chart = histogram([0, 0, 4, 5, 5], 5, bins=5)
    assert [bar.count for bar in chart.bars] == [2, 0, 0, 0, 3]
    assert chart.y_max == 3
