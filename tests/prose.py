"""Varied prose for the listener's checks: the opening of Lewis Carroll's "Alice's Adventures
in Wonderland" (1865, public domain), about 5,000 characters in paragraphs."""

from __future__ import annotations

ALICE = """Alice was beginning to get very tired of sitting by her sister on the bank, and of having nothing to do. Once or twice she had peeped into the book her sister was reading, but it had no pictures or conversations in it. "And what is the use of a book," thought Alice, "without pictures or conversations?"

So she was considering in her own mind, as well as she could, for the hot day made her feel very sleepy and stupid, whether the pleasure of making a daisy chain would be worth the trouble of getting up and picking the daisies, when suddenly a White Rabbit with pink eyes ran close by her.

There was nothing so very remarkable in that; nor did Alice think it so very much out of the way to hear the Rabbit say to itself, "Oh dear! Oh dear! I shall be late!" But when the Rabbit actually took a watch out of its waistcoat pocket, and looked at it, and then hurried on, Alice started to her feet. It flashed across her mind that she had never before seen a rabbit with either a waistcoat pocket, or a watch to take out of it. Burning with curiosity, she ran across the field after it, and was just in time to see it pop down a large rabbit hole under the hedge.

In another moment down went Alice after it, never once considering how in the world she was to get out again. The rabbit hole went straight on like a tunnel for some way, and then dipped suddenly down, so suddenly that Alice had not a moment to think about stopping herself before she found herself falling down a very deep well.

Either the well was very deep, or she fell very slowly, for she had plenty of time as she went down to look about her and to wonder what was going to happen next. First, she tried to look down and make out what she was coming to, but it was too dark to see anything. Then she looked at the sides of the well, and noticed that they were filled with cupboards and book shelves. Here and there she saw maps and pictures hung upon pegs. She took down a jar from one of the shelves as she passed. It was labelled "Orange Marmalade", but to her great disappointment it was empty. She did not like to drop the jar for fear of killing somebody underneath, so she managed to put it into one of the cupboards as she fell past it.

"Well!" thought Alice to herself, "after such a fall as this, I shall think nothing of tumbling down stairs! How brave they will all think me at home!" Down, down, down. Would the fall never come to an end? "I wonder how many miles I have fallen by this time?" she said aloud. "I must be getting somewhere near the centre of the earth. Let me see: that would be four thousand miles down, I think." For, you see, Alice had learnt several things of this sort in her lessons in the schoolroom, and though this was not a very good opportunity for showing off her knowledge, as there was no one to listen to her, still it was good practice to say it over.

Down, down, down. There was nothing else to do, so Alice soon began talking again. "Dinah will miss me very much tonight, I should think!" Dinah was the cat. "I hope they will remember her saucer of milk at tea time. Dinah, my dear! I wish you were down here with me! There are no mice in the air, I am afraid, but you might catch a bat, and that is very like a mouse, you know."

Suddenly, thump! thump! down she came upon a heap of sticks and dry leaves, and the fall was over. Alice was not a bit hurt, and she jumped up on to her feet in a moment. She looked up, but it was all dark overhead. Before her was another long passage, and the White Rabbit was still in sight, hurrying down it. There was not a moment to be lost. Away went Alice like the wind, and was just in time to hear it say, as it turned a corner, "Oh my ears and whiskers, how late it is getting!"

She was close behind it when she turned the corner, but the Rabbit was no longer to be seen. She found herself in a long, low hall, which was lit up by a row of lamps hanging from the roof. There were doors all round the hall, but they were all locked. When Alice had been all the way down one side and up the other, trying every door, she walked sadly down the middle, wondering how she was ever to get out again.

Suddenly she came upon a little three legged table, all made of solid glass. There was nothing on it except a tiny golden key, and Alice's first thought was that it might belong to one of the doors of the hall. But, alas! either the locks were too large, or the key was too small, but at any rate it would not open any of them. However, on the second time round, she came upon a low curtain she had not noticed before, and behind it was a little door about fifteen inches high. She tried the little golden key in the lock, and to her great delight it fitted!

Alice opened the door and found that it led into a small passage, not much larger than a rat hole. She knelt down and looked along the passage into the loveliest garden you ever saw. How she longed to get out of that dark hall, and wander about among those beds of bright flowers and those cool fountains, but she could not even get her head through the doorway.
"""
